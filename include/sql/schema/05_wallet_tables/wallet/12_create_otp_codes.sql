CREATE TABLE IF NOT EXISTS {{ schema | ident }}.otp_codes (
    "id" serial PRIMARY KEY,
    "user_id" integer,
    "identifier" text NOT NULL,
    "code" text NOT NULL,
    "purpose" varchar(30) NOT NULL,
    "expires_at" timestamp NOT NULL,
    "used_at" timestamp,
    "created_at" timestamp DEFAULT now()
)
