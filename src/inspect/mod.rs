//! Inspection: each step of "how it works" turned into something to look
//! at. How text splits into tokens, the next-token distribution, the
//! attention maps of every layer and head, the geometry of the token
//! embedding, how much a caption token's state depends on its context, the
//! denoising path of text to image and where each caption word lands in the
//! picture; as data (serde, for
//! `--json`) and as pictures.

mod attention;
mod context;
mod cross_attention;
mod denoise;
mod embed;
mod next;
mod pictures;
mod tokens;

pub use attention::{attention_maps, open_model_attention_maps, Attended, AttentionMaps};
pub use context::{compare_contexts, ContextComparison};
pub use cross_attention::{cross_attention_maps, cross_attention_strip, CrossAttentionMaps};
pub use denoise::{denoise_frames, denoise_strip, shown_steps, DenoiseFrame};
pub use embed::{parse_analogy, pca_2d, EmbeddingSpace, Neighbour, Term, WordVector};
pub use next::{fits, next_token_probs, next_tokens, prompt_ids, NextToken, NextTokens};
pub use pictures::{attention_heatmap, probability_bars, token_boxes, word_map};
pub use tokens::{split_tokens, token_piece, visible, TokenPiece};
