SELECT epoch, phase FROM {{ fence | ident }}
