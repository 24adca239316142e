-- Read by the generator functions; session-wide so every batch sees it.
SELECT set_config('credity_generator.seed', %(seed)s, false)
