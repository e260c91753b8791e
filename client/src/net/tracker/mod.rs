//! All tracker traffic: the JSON protocol client and the BEP 15 client and
//! announcer.

pub mod bep15;
pub mod json;
pub mod register;
