-- Serialises two attempts at the same chunk (a retry racing a zombie) until commit.
SELECT pg_advisory_xact_lock(hashtextextended(%(chunk_id)s, 0))
