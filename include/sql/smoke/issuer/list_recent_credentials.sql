SELECT c.id, tpl.name AS template, iss.name AS issuer, c.revoked
FROM {{ schema | ident }}.credentials AS c
JOIN {{ schema | ident }}.templates AS tpl ON tpl.id = c.template_id
JOIN {{ schema | ident }}.issuers AS iss ON iss.id = c.issuer_id
ORDER BY c.created_at DESC, c.id
LIMIT 20
