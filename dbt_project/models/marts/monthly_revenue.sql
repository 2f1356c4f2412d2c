-- The monthly revenue report (seed "Success Metrics: Financial"), per month in UTC, from the ledger
-- in integer cents:
-- * mrr_cents: monthly recurring revenue, the subscription invoices paid in the month (every price is
--   monthly, so each paying subscription counts its price once a month);
-- * refunds_cents: refunds and disputes net of disputes won back (money returned to subscribers);
-- * net_revenue_cents = mrr - refunds = platform_revenue_cents (30%) + creator_earnings_cents (70%);
-- * creator_payouts_cents: transfers made to creators in the month. A month's payouts are booked on
--   the 1st of the next month, so a row shows the payouts of the month before.
with entries as (
    select
        cast(date_trunc('month', timezone('UTC', booked_at)) as date) as month,
        kind,
        account,
        amount_cents,
        creator_id,
        invoice_id
    from {{ ref('stg_ledger') }}
)

select
    month,
    count(distinct invoice_id) filter (where kind = 'revenue') as paid_invoices,
    coalesce(-sum(amount_cents) filter (where kind = 'revenue' and account = 'stripe_clearing'), 0)
        as mrr_cents,
    coalesce(
        sum(amount_cents) filter (where kind not in ('revenue', 'payout') and account = 'stripe_clearing'), 0
    ) as refunds_cents,
    coalesce(-sum(amount_cents) filter (where kind <> 'payout' and account = 'stripe_clearing'), 0)
        as net_revenue_cents,
    coalesce(sum(amount_cents) filter (where account = 'platform'), 0) as platform_revenue_cents,
    coalesce(sum(amount_cents) filter (where kind <> 'payout' and account like 'creator:%'), 0)
        as creator_earnings_cents,
    coalesce(sum(amount_cents) filter (where kind = 'payout' and account = 'stripe_transfers'), 0)
        as creator_payouts_cents,
    count(distinct creator_id) filter (where kind = 'payout') as creators_paid
from entries
group by month
order by month
