<?php

namespace CheckoutTest;

use RuntimeException;

/**
 * PHP's built-in server on 127.0.0.1 serving a TestApp's base path through
 * Laravel's HTTP kernel (server.php), with PHP_CLI_SERVER_WORKERS workers,
 * stopped when the test file ends.  Requests are plain HTTP/1.0 over
 * sockets; several can be in flight at once (concurrently()).
 */
final class HttpServer
{
    public readonly int $port;
    private $process;

    public function __construct(TestApp $app, int $workers = 1)
    {
        $this->port = self::freePort();
        $env = getenv() + ['CHECKOUT_TEST_APP' => $app->basePath, 'PHP_CLI_SERVER_WORKERS' => (string) $workers];
        $env['CHECKOUT_TEST_APP'] = $app->basePath;
        $env['PHP_CLI_SERVER_WORKERS'] = (string) $workers;
        $this->process = proc_open([PHP_BINARY, '-S', "127.0.0.1:{$this->port}", __DIR__.'/server.php'],
            [0 => ['file', '/dev/null', 'r'], 1 => ['file', $app->basePath.'/storage/logs/server.out', 'a'],
             2 => ['file', $app->basePath.'/storage/logs/server.err', 'a']], $pipes, null, $env);
        $pid = getmypid();
        register_shutdown_function(fn () => getmypid() === $pid && $this->stop());
        for ($i = 0; $i < 100; $i++) {
            if ($socket = @stream_socket_client("tcp://127.0.0.1:{$this->port}", $errno, $error, 0.1)) {
                fclose($socket);

                return;
            }
            usleep(50_000);
        }
        throw new RuntimeException("PHP's built-in server did not start on port {$this->port}");
    }

    /** One request: [status, headers (lower-case name => value), body]. */
    public function request(string $method, string $path, array|string|null $body = null, array $headers = []): array
    {
        return $this->concurrently([[$method, $path, $body, $headers]])[0];
    }

    /** Send every request at once, then read every answer: a list of [status, headers, body]. */
    public function concurrently(array $requests): array
    {
        $sockets = [];
        foreach ($requests as $i => [$method, $path, $body, $headers]) {
            $headers = array_change_key_case($headers + ['Accept' => 'application/json']);
            if (is_array($body)) {
                $body = json_encode($body);
                $headers['content-type'] = 'application/json';
            }
            $raw = "$method $path HTTP/1.0\r\nHost: 127.0.0.1:{$this->port}\r\nConnection: close\r\n";
            foreach ($headers as $name => $value) {
                $raw .= "$name: $value\r\n";
            }
            $raw .= 'Content-Length: '.strlen((string) $body)."\r\n\r\n".$body;
            $socket = stream_socket_client("tcp://127.0.0.1:{$this->port}", $errno, $error, 5);
            fwrite($socket, $raw);
            $sockets[$i] = $socket;
        }
        $answers = [];
        foreach ($sockets as $i => $socket) {
            stream_set_timeout($socket, 60);
            $answers[$i] = self::parse(stream_get_contents($socket));
            fclose($socket);
        }

        return $answers;
    }

    public function stop(): void
    {
        if ($this->process === null) {
            return;
        }
        $status = proc_get_status($this->process);
        // the workers are the server's children: end them, then the server
        foreach (glob('/proc/[0-9]*/stat') as $stat) {
            $fields = explode(' ', (string) @file_get_contents($stat));
            if (($fields[3] ?? null) === (string) $status['pid']) {
                posix_kill((int) $fields[0], SIGTERM);
            }
        }
        proc_terminate($this->process);
        proc_close($this->process);
        $this->process = null;
    }

    private static function parse(string $raw): array
    {
        [$head, $body] = array_pad(explode("\r\n\r\n", $raw, 2), 2, '');
        $lines = explode("\r\n", $head);
        preg_match('/^HTTP\/\S+ (\d+)/', array_shift($lines), $m);
        $headers = [];
        foreach ($lines as $line) {
            [$name, $value] = array_pad(explode(':', $line, 2), 2, '');
            $headers[strtolower(trim($name))] = trim($value);
        }

        return [(int) ($m[1] ?? 0), $headers, $body];
    }

    private static function freePort(): int
    {
        $socket = stream_socket_server('tcp://127.0.0.1:0');
        $port = (int) substr(strrchr(stream_socket_get_name($socket, false), ':'), 1);
        fclose($socket);

        return $port;
    }
}
