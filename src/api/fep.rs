//! The fep operations on trained runs (see [`super`]).
