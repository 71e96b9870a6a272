//! `sparkwing`: runs pipelines written in Rust, locally or inside an existing CI job.

mod active;
mod app;
mod cli;
mod commands;
mod dashboard;
mod error;
mod fsevents;
mod home;
mod output;
mod profiles;
mod project;
mod reader;
mod run;
mod sdk;
mod source;

fn main() {
    let code = app::main_impl();
    std::process::exit(code);
}
