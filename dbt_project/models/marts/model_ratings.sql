-- Users' ratings per model (SPEC 6): the mean stars (2 decimals) and count of visible reviews;
-- reported reviews count again once an operator restores them, hidden ones never
-- (domain.marketplace.ratings.mean_rating in Python).
select
    models.model_id,
    count(reviews.review_id) filter (where reviews.visibility = 'visible') as ratings,
    round(avg(reviews.stars) filter (where reviews.visibility = 'visible'), 2) as rating_mean,
    count(reviews.review_id) filter (where reviews.visibility = 'reported') as reported,
    count(reviews.review_id) filter (where reviews.visibility = 'hidden') as hidden
from {{ ref('int_latest_model_versions') }} as models
left join {{ ref('stg_user_reviews') }} as reviews using (model_id)
group by models.model_id
