INSERT INTO {{ schema | ident }}.subscriptions
    (id, user_id, plan, status, razorpay_subscription_id, razorpay_customer_id, current_period_start,
     current_period_end, cancelled_at, created_at, updated_at)
SELECT
    g.n,
    1 + mod(pg_temp.rnd(g.n, 1), %(n_users)s),
    (ARRAY['free', 'pro', 'business'])[1 + mod(g.n, 3)],
    (ARRAY['active', 'cancelled', 'past_due'])[1 + mod(g.n, 3)],
    pg_temp.or_null(g.n, 2, 'sub_' || g.n || substr(md5('sub' || g.n), 1, 8)),
    pg_temp.or_null(g.n, 3, 'cust_' || substr(md5('cust' || g.n), 1, 14)),
    pg_temp.or_null(g.n, 4, pg_temp.ts(g.n, 5)),
    pg_temp.or_null(g.n, 6, pg_temp.ts(g.n, 7)),
    pg_temp.or_null(g.n, 8, pg_temp.ts(g.n, 9)),
    pg_temp.or_null(g.n, 10, pg_temp.ts(g.n, 11)),
    pg_temp.or_null(g.n, 12, pg_temp.ts(g.n, 13))
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g(n)
