-- Listed models (latest version, public, active) with their figures over the rolling window ending on
-- the latest performance date, ranked within sport and bet type: windows of at least `min_graded`
-- graded picks first, then windows with graded picks, then the edge lower bound (Wilson lower bound
-- of accuracy minus the mean break-even probability), ties by ROI. The same rules as
-- domain.marketplace.performance.leaderboard; counts are summed over daily rows, never means of means.
with performance as (
    select * from {{ ref('stg_model_performance') }}
),

as_of as (
    select max(date) as as_of from performance
),

rolling as (
    select
        model_id,
        version,
        sum(graded) as graded,
        sum(correct_predictions) as wins,
        sum(units) as units,
        sum(profit) as profit,
        sum(coalesce(brier_score, 0) * graded) as brier_sum,
        sum(coalesce(breakeven, 0) * graded) as breakeven_sum,
        sum(coalesce(clv, 0) * coalesce(clv_picks, 0)) as clv_sum,
        sum(coalesce(clv_sq, 0) * coalesce(clv_picks, 0)) as clv_sq_sum,
        sum(coalesce(clv_picks, 0)) as clv_picks
    from performance
    cross join as_of
    where performance.date between as_of.as_of - {{ var('rolling_days') - 1 }} and as_of.as_of
    group by model_id, version
),

means as (
    select
        model_id,
        version,
        case when graded > 0 then breakeven_sum / graded end as breakeven,
        case when clv_picks > 0 then clv_sum / clv_picks end as clv,
        case when clv_picks > 0 then clv_sq_sum / clv_picks end as clv_sq
    from rolling
),

listed as (
    select * from {{ ref('int_latest_model_versions') }}
    where public and status = 'active'
),

scored as (
    select
        listed.sport,
        listed.bet_type,
        listed.market,
        listed.model_id,
        listed.version,
        listed.owner_user_id,
        listed.name,
        listed.price_cents,
        (select as_of from as_of) as as_of,
        coalesce(rolling.graded, 0) as graded,
        coalesce(rolling.wins, 0) as wins,
        case when rolling.graded > 0 then rolling.wins / rolling.graded end as accuracy,
        coalesce(rolling.units, 0) as units,
        coalesce(rolling.profit, 0) as profit,
        case when rolling.units > 0 then rolling.profit / rolling.units end as roi,
        case when rolling.graded > 0 then rolling.brier_sum / rolling.graded end as brier,
        means.breakeven,
        means.clv,
        {{ mean_interval('means.clv', 'means.clv_sq', 'rolling.clv_picks', -1) }} as clv_low,
        {{ mean_interval('means.clv', 'means.clv_sq', 'rolling.clv_picks', 1) }} as clv_high,
        coalesce(rolling.clv_picks, 0) as clv_picks,
        {{ edge_lower_bound('coalesce(rolling.wins, 0)', 'coalesce(rolling.graded, 0)', 'means.breakeven') }}
            as performance_score,
        coalesce(rolling.graded, 0) >= {{ var('min_graded') }} as established
    from listed
    left join rolling using (model_id, version)
    left join means using (model_id, version)
)

select
    *,
    row_number() over (
        partition by sport, bet_type
        order by established desc, graded > 0 desc, performance_score desc, roi desc nulls last, model_id
    ) as rank
from scored
