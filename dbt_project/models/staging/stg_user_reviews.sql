-- Users' reviews of models as they stand (domain.marketplace.ratings.USER_REVIEWS, the text left out).
{{ lake_select('user_reviews', 'tables/user_reviews.parquet', {
    'model_id': 'varchar',
    'review_id': 'varchar',
    'user_id': 'varchar',
    'stars': 'tinyint',
    'created_at': 'timestamptz',
    'edited_at': 'timestamptz',
    'edits': 'integer',
    'helpful': 'integer',
    'replied_at': 'timestamptz',
    'pending_reports': 'integer',
    'visibility': 'varchar',
}) }}
