CREATE TABLE IF NOT EXISTS {{ schema | ident }}.subscriptions (
    "id" serial PRIMARY KEY,
    "user_id" integer NOT NULL,
    "plan" varchar(50) NOT NULL,
    "status" varchar(20) NOT NULL DEFAULT 'active',
    "razorpay_subscription_id" text,
    "razorpay_customer_id" text,
    "current_period_start" timestamp,
    "current_period_end" timestamp,
    "cancelled_at" timestamp,
    "created_at" timestamp DEFAULT now(),
    "updated_at" timestamp DEFAULT now()
)
