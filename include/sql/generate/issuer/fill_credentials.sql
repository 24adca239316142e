INSERT INTO {{ schema | ident }}.credentials
    (id, tenant_id, template_id, issuer_id, format, issuer_did, subject_did, status_list_id, status_list_index,
     anchor_batch_id, anchor_proof, holder_binding, issuance_flow, recipient, credential_data, vc_jwt, ipfs_hash,
     anchor_id, tx_hash, block_number, credential_hash, revoked, created_at)
SELECT
    pg_temp.uid('credentials', g.n),
    pg_temp.uid('tenants', 1 + mod(pg_temp.rnd(g.n, 1), %(n_tenants)s)),
    pg_temp.uid('templates', 1 + mod(pg_temp.rnd(g.n, 2), %(n_templates)s)),
    pg_temp.uid('issuers', 1 + mod(pg_temp.rnd(g.n, 3), %(n_issuers)s)),
    pg_temp.or_null(g.n, 4, (ARRAY['vc+jwt', 'vc+sd-jwt', 'ldp_vc'])[1 + mod(g.n, 3)]),
    pg_temp.or_null(g.n, 5, 'did:web:issuer' || mod(g.n, 40) || '.example.edu'),
    pg_temp.or_null(g.n, 6, 'did:key:z6Mk' || md5('subject' || g.n)),
    pg_temp.or_null(g.n, 7, 'status-list-' || mod(g.n, 16)),
    pg_temp.or_null(g.n, 8, CASE mod(g.n, 60) WHEN 0 THEN 0 WHEN 1 THEN 2147483647 ELSE mod(pg_temp.rnd(g.n, 9), 131072)::integer END),
    pg_temp.or_null(g.n, 10, 'batch-' || mod(g.n, 100)),
    pg_temp.or_null(g.n, 11, jsonb_build_object('merkleRoot', md5('root' || mod(g.n, 100)), 'path', jsonb_build_array(md5('p1' || g.n), md5('p2' || g.n)))),
    pg_temp.or_null(g.n, 12, jsonb_build_object('type', 'did', 'nonce', md5('nonce' || g.n))),
    pg_temp.or_null(g.n, 13, (ARRAY['legacy', 'oid4vci', 'digilocker'])[1 + mod(g.n, 3)]),
    jsonb_build_object('name', pg_temp.or_hard(g.n, 14, pg_temp.person_name(g.n, 15)), 'email', 'student' || g.n || '@example.edu', 'studentId', 'S' || g.n),
    pg_temp.doc(g.n, 20),
    pg_temp.or_null(g.n, 16, 'eyJhbGciOiJFZERTQSJ9.' || md5('vc' || g.n) || '.' || md5('vcsig' || g.n)),
    pg_temp.or_null(g.n, 17, 'Qm' || md5('ipfs' || g.n)),
    pg_temp.or_null(g.n, 18, 'anchor-' || g.n),
    pg_temp.or_null(g.n, 19, '0x' || md5('tx' || g.n) || md5('tx2' || g.n)),
    pg_temp.or_null(g.n, 21, (18000000 + mod(pg_temp.rnd(g.n, 22), 2000000))::integer),
    pg_temp.or_null(g.n, 23, encode(sha256(('credential' || g.n)::bytea), 'hex')),
    pg_temp.or_null(g.n, 24, mod(g.n, 11) = 0),
    pg_temp.or_null(g.n, 25, pg_temp.ts(g.n, 26))
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g(n)
