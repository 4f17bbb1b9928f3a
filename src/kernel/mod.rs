//! The driver's kernel side, generic over [`KernelApi`] so host tests can run
//! it against a fake kernel.
//!
//! The safe ownership wrappers, the two ways to alias a page, the service's
//! parameters, the error type and the `DriverEntry`/`DriverUnload` lifecycle.

mod alias;
mod api;
mod arm64;
mod error;
mod inspect;
mod lifecycle;
mod line;
mod log;
mod memory;
mod named;
mod parameters;
mod physical;
mod tables;
mod walk;
mod x64;

pub use alias::{Alias, MappingMethod};
pub use api::{Arm64Registers, KernelApi, PagingRegisters, X64Registers};
pub use error::DriverError;
pub use inspect::inspect;
pub use lifecycle::{DriverSlot, POOL_TAG, load, unload};
pub use line::Line;
pub use log::LogFormat;
pub use memory::{Mappable, Mapping, Mdl, PAGE_SIZE, PagesMdl, PartialMdl, PoolBuffer};
pub use named::{
    MAX_NAMED_ADDRESSES, MAX_PROCESS_NAME, MAX_SCANNED_PROCESS_ID, NamedAddresses, ProcessChoice,
    walk_named,
};
pub use parameters::{Parameters, read_parameters};
pub use physical::{CopyFailed, KernelMemory};
