DELETE FROM {{ allowed_transitions }}
