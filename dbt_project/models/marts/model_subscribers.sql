-- Subscribers per model: subscriptions in trial or active give access
-- (domain.money.subscriptions.ACCESS_STATUSES); cancelled and expired ones do not count.
select
    models.model_id,
    models.owner_user_id as creator_id,
    count(subscriptions.subscription_id) filter (where subscriptions.status in ('trial', 'active')) as subscribers,
    count(subscriptions.subscription_id) filter (where subscriptions.status = 'trial') as trials,
    count(subscriptions.subscription_id) filter (where subscriptions.status = 'active') as paying
from {{ ref('int_latest_model_versions') }} as models
left join {{ ref('stg_subscriptions') }} as subscriptions using (model_id)
group by models.model_id, models.owner_user_id
