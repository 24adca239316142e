SELECT
    (SELECT count(*) FROM {{ findings }}) AS found,
    (SELECT count(*) FROM {{ findings }} WHERE repaired) AS repaired,
    (SELECT count(DISTINCT run_id) FROM {{ runs }}) AS runs
