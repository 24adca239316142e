-- ADD CONSTRAINT has no IF NOT EXISTS: a second run finds the constraint's index and does nothing.
DO $add_constraint$
BEGIN
    ALTER TABLE {{ schema | ident }}.subscriptions ADD CONSTRAINT subscriptions_razorpay_subscription_id_unique UNIQUE ("razorpay_subscription_id");
EXCEPTION
    WHEN duplicate_table OR duplicate_object THEN NULL;
END
$add_constraint$
