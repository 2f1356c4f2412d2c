-- Subscribers per model at the build's time: subscriptions that give access then
-- (domain.money.subscriptions.access: trial, active, or past_due within its grace days);
-- cancelled and expired ones, and past_due ones past their grace, do not count.
select
    models.model_id,
    models.owner_user_id as creator_id,
    count(subscriptions.subscription_id) filter (
        where {{ has_access('subscriptions.status', 'subscriptions.past_due_since', 'current_timestamp') }}
    ) as subscribers,
    count(subscriptions.subscription_id) filter (where subscriptions.status = 'trial') as trials,
    count(subscriptions.subscription_id) filter (where subscriptions.status = 'active') as paying,
    count(subscriptions.subscription_id) filter (
        where subscriptions.status = 'past_due'
        and {{ has_access('subscriptions.status', 'subscriptions.past_due_since', 'current_timestamp') }}
    ) as in_grace
from {{ ref('int_latest_model_versions') }} as models
left join {{ ref('stg_subscriptions') }} as subscriptions using (model_id)
group by models.model_id, models.owner_user_id
