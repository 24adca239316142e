SELECT
    (SELECT count(*) FROM {{ findings | ident }}) AS found,
    (SELECT count(*) FROM {{ findings | ident }} WHERE repaired) AS repaired,
    (SELECT count(DISTINCT run_id) FROM {{ runs | ident }}) AS runs
