SELECT pg_advisory_xact_lock(hashtext(%(lock_name)s))
