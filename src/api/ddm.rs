//! The ddm operations on trained runs (see [`super`]).
