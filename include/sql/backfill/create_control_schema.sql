CREATE SCHEMA IF NOT EXISTS {{ control_schema | ident }}
