//! growlm facade
