//! The nlm operations on trained runs (see [`super`]).
