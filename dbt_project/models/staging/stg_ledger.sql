-- Every ledger entry (domain.money.ledger.LEDGER): one object per month of bookings, integer cents.
{{ lake_select('ledger', 'tables/ledger/*.parquet', {
    'entry_id': 'varchar',
    'txn_id': 'varchar',
    'kind': 'varchar',
    'account': 'varchar',
    'amount_cents': 'bigint',
    'booked_at': 'timestamptz',
    'creator_id': 'varchar',
    'model_id': 'varchar',
    'invoice_id': 'varchar',
    'charge_id': 'varchar',
    'payment_intent_id': 'varchar',
    'source_id': 'varchar',
}) }}
