-- Per creator: models (not archived), listed models, and the all-time record of every model they made
-- (archived ones included, so archiving never hides a bad record): graded picks, the mean of the
-- models' accuracies, and subscribers (those with access: trial, active, past_due in grace) over all their models.
with models as (
    select * from {{ ref('int_latest_model_versions') }}
),

records as (
    select model_id, sum(graded) as graded, sum(correct_predictions) as wins
    from {{ ref('stg_model_performance') }}
    group by model_id
)

select
    models.owner_user_id as creator_id,
    count(*) filter (where models.status <> 'archived') as models,
    count(*) filter (where models.public and models.status = 'active') as public_models,
    coalesce(sum(records.graded), 0) as total_graded,
    avg(case when records.graded > 0 then records.wins / records.graded end) as avg_accuracy,
    coalesce(sum(subscribers.subscribers), 0) as subscribers
from models
left join records using (model_id)
left join {{ ref('model_subscribers') }} as subscribers using (model_id)
group by models.owner_user_id
