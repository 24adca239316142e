DELETE FROM {{ allowed_transitions | ident }}
