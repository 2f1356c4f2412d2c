-- The latest state of every subscription (domain.money.subscriptions.SUBSCRIPTIONS, Stripe ordering keys left out).
{{ lake_select('subscriptions', 'tables/subscriptions.parquet', {
    'subscription_id': 'varchar',
    'user_id': 'varchar',
    'model_id': 'varchar',
    'creator_id': 'varchar',
    'price_cents': 'bigint',
    'status': 'varchar',
    'past_due_since': 'timestamptz',
    'start_date': 'timestamptz',
    'trial_end': 'timestamptz',
    'current_period_end': 'timestamptz',
    'cancel_at_period_end': 'boolean',
}) }}
