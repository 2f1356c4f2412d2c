-- One row per model version (domain.models.registry.MODEL_VERSIONS without the config JSON).
{{ lake_select('model_versions', 'tables/model_versions.parquet', {
    'model_id': 'varchar',
    'version': 'integer',
    'owner_user_id': 'varchar',
    'name': 'varchar',
    'description': 'varchar',
    'sport': 'varchar',
    'bet_type': 'varchar',
    'market': 'varchar',
    'public': 'boolean',
    'price_cents': 'bigint',
    'trial_days': 'integer',
    'status': 'varchar',
    'created_at': 'timestamptz',
}) }}
