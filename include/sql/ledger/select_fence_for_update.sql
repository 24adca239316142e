SELECT epoch, phase FROM {{ fence | ident }} FOR UPDATE
