<?php

namespace CheckoutTest;

/**
 * The application around the README's snippets, as files for TestApp: the
 * README's routes, listeners and EventServiceProvider $listen, and the
 * application's own pieces the README says are yours - App\Payments\Gateway
 * (a recording stand-in: calls go to the gateway_calls table) and
 * App\Mail\OrderConfirmation (a row in confirmations per mail "sent").
 */
final class ShopApp
{
    public static function files(): array
    {
        return [
            'routes/web.php' => Readme::snippet('routes-web'),
            'routes/api.php' => Readme::snippet('routes-api')."\nrequire __DIR__.'/webhooks.php';\n",
            'routes/webhooks.php' => Readme::snippet('routes-webhook'),
            'app/Listeners/SendOrderConfirmation.php' => Readme::snippet('listeners'),
            'app/Listeners/GiveMoneyBack.php' => Readme::snippet('compensation-listener'),
            'app/Providers/EventServiceProvider.php' => "<?php\n\nnamespace App\\Providers;\n\n"
                ."class EventServiceProvider extends \\Illuminate\\Foundation\\Support\\Providers\\EventServiceProvider\n{\n"
                .Readme::snippet('event-listen')."}\n",
            'app/Providers/AppServiceProvider.php' => <<<'PHP'
                <?php

                namespace App\Providers;

                class AppServiceProvider extends \Illuminate\Support\ServiceProvider
                {
                    public function register(): void
                    {
                        $this->app->bind(\App\Payments\Gateway::class, \App\Payments\RecordingGateway::class);
                    }
                }
                PHP,
            'app/Payments/Gateway.php' => <<<'PHP'
                <?php

                namespace App\Payments;

                interface Gateway
                {
                    public function authorize(string $card, int $amount): string;

                    public function void(string $reference, string $idempotencyKey): void;

                    public function refund(string $reference, int $amount, string $idempotencyKey): void;
                }
                PHP,
            'app/Payments/RecordingGateway.php' => <<<'PHP'
                <?php

                namespace App\Payments;

                use Illuminate\Support\Facades\DB;

                class RecordingGateway implements Gateway
                {
                    public function authorize(string $card, int $amount): string
                    {
                        return 'auth-'.$card.'-'.$amount;
                    }

                    public function void(string $reference, string $idempotencyKey): void
                    {
                        DB::connection('super')->table('gateway_calls')->insert(['call' => "void $reference", 'idempotency_key' => $idempotencyKey]);
                    }

                    public function refund(string $reference, int $amount, string $idempotencyKey): void
                    {
                        DB::connection('super')->table('gateway_calls')->insert(['call' => "refund $reference $amount", 'idempotency_key' => $idempotencyKey]);
                    }
                }
                PHP,
            'app/Mail/OrderConfirmation.php' => <<<'PHP'
                <?php

                namespace App\Mail;

                use Checkout\Laravel\CheckoutStatus;
                use Illuminate\Support\Facades\DB;

                class OrderConfirmation
                {
                    public static function send(CheckoutStatus $status): void
                    {
                        DB::connection('super')->table('confirmations')->insert(['lock_id' => $status->lockId, 'sent_by' => (string) getmypid()]);
                    }
                }
                PHP,
        ];
    }

    /** The providers an application of these files lists. */
    public static function providers(): array
    {
        return ['App\\Providers\\AppServiceProvider', 'App\\Providers\\EventServiceProvider'];
    }
}
