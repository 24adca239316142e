-- A move (claimed_by NULL) or a claim (the claiming dag/run): the epoch moves on either way.
UPDATE {{ fence | ident }} SET epoch = epoch + 1, phase = %(phase)s, claimed_by = %(claimed_by)s RETURNING epoch
