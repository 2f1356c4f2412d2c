-- Months whose net revenue is not exactly the platform's share plus the creators' (every ledger
-- transaction sums to zero, so no month may differ), or is not MRR minus refunds.
select month, net_revenue_cents, platform_revenue_cents, creator_earnings_cents
from {{ ref('monthly_revenue') }}
where net_revenue_cents <> platform_revenue_cents + creator_earnings_cents
   or net_revenue_cents <> mrr_cents - refunds_cents
