SELECT epoch, phase, claimed_by FROM {{ fence | ident }}
