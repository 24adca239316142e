SELECT has_database_privilege(current_database(), 'CREATE')
