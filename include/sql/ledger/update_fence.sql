UPDATE {{ fence | ident }} SET epoch = epoch + 1, phase = %(phase)s RETURNING epoch
