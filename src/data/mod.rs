//! Training data: token shards on disk, the corpus preparation that writes
//! them, and the random batches the trainer reads from them; and for the
//! image models, picture–caption pairs from the procedural shapes world,
//! MNIST, or a folder of images.

mod batches;
mod folder;
mod images;
pub mod mnist;
mod prepare;
pub mod shapes;
mod shard;

pub use batches::{mix, Batch, BatchSampler, Split};
pub use folder::{load_folder, ImageFolder};
pub use images::{grid, images_to_tensor, tensor_to_images, HardNegative, PairSource, Pairs};
pub use prepare::{prepare, DataMeta, PrepareOptions, PreparedData};
pub use shard::{write_shard, TokenShard, SHARD_MAGIC, SHARD_VERSION};
