//! The geometry of a token embedding (a GPT's, which is also its output
//! layer, or a caption encoder's): nearest tokens by cosine similarity, analogies by vector
//! arithmetic ("king - man + woman"), and a 2-D projection by PCA.
//!
//! A word is the token it encodes to; with byte-level BPE the form with a
//! leading space (`Ġking`, the word inside a sentence) is tried first. A word
//! that is several tokens is the mean of their vectors, and says so.

use super::tokens::{token_piece, TokenPiece};
use crate::model::{Gpt, Llama};
use crate::tokenize::{Tokenizer, TokenizerKind};
use crate::{Error, Result};
use candle_core::Tensor;
use serde::Serialize;

/// Every token's embedding vector.
#[derive(Debug, Clone)]
pub struct EmbeddingSpace {
    vectors: Vec<Vec<f32>>,
    norms: Vec<f32>,
}

/// A word's vector and the tokens it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WordVector {
    /// The word as asked for.
    pub word: String,
    /// The tokens whose vectors make it (their mean when more than one).
    pub tokens: Vec<TokenPiece>,
    /// The vector.
    #[serde(skip)]
    pub vector: Vec<f32>,
}

impl WordVector {
    /// A line saying which tokens the word is, e.g. `king = Ġking (id 301)`
    /// or `kingdom = mean of 2 tokens: Ġking (301), dom (512)`.
    pub fn describe(&self) -> String {
        let names: Vec<String> = self
            .tokens
            .iter()
            .map(|t| format!("{} ({})", t.display(), t.id))
            .collect();
        match names.as_slice() {
            [one] => format!("{} = token {one}", self.word),
            many => format!(
                "{} = mean of {} tokens: {}",
                self.word,
                many.len(),
                many.join(", ")
            ),
        }
    }
}

/// A token near a vector.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Neighbour {
    /// Its text.
    pub token: String,
    /// Its id.
    pub id: u32,
    /// Cosine similarity to the vector.
    pub similarity: f64,
}

/// One term of an analogy: a word added (`+1`) or subtracted (`-1`).
#[derive(Debug, Clone, PartialEq)]
pub struct Term {
    /// `+1.0` or `-1.0`.
    pub sign: f32,
    /// The word.
    pub word: String,
}

impl EmbeddingSpace {
    /// The token embedding of `model`.
    pub fn of(model: &Gpt) -> Result<Self> {
        Self::new(model.token_embeddings())
    }

    /// The token embedding of an open model (its quantized rows expanded).
    pub fn of_open(model: &Llama) -> Self {
        let matrix = model.embeddings();
        Self::from_vectors(
            matrix
                .to_f32()
                .chunks_exact(matrix.cols())
                .map(<[f32]>::to_vec)
                .collect(),
        )
    }

    /// The rows of a `[vocab, width]` embedding matrix.
    pub fn new(matrix: &Tensor) -> Result<Self> {
        Ok(Self::from_vectors(
            matrix.to_dtype(candle_core::DType::F32)?.to_vec2()?,
        ))
    }

    fn from_vectors(vectors: Vec<Vec<f32>>) -> Self {
        let norms = vectors.iter().map(|v| norm(v)).collect();
        Self { vectors, norms }
    }

    /// The vector of `word` (see the module's doc); a word the tokenizer
    /// cannot encode is refused.
    pub fn word(&self, tokenizer: &Tokenizer, word: &str) -> Result<WordVector> {
        let word = word.trim();
        if word.is_empty() {
            return Err(Error::Invalid("an empty word has no embedding".into()));
        }
        let encode = |text: &str| {
            tokenizer.encode(text).map_err(|e| {
                Error::Invalid(format!("'{word}' is not in the model's vocabulary: {e}"))
            })
        };
        let forms = match tokenizer.kind() {
            TokenizerKind::Bpe => vec![format!(" {word}"), word.to_string()],
            TokenizerKind::Char => vec![word.to_string()],
        };
        let encodings = forms
            .iter()
            .map(|form| encode(form))
            .collect::<Result<Vec<_>>>()?;
        let ids = encodings
            .iter()
            .find(|ids| ids.len() == 1)
            .unwrap_or(&encodings[0]);
        let tokens = ids
            .iter()
            .map(|&id| token_piece(tokenizer, id))
            .collect::<Result<Vec<_>>>()?;
        let mut vector = vec![0.0; self.dim()];
        for &id in ids {
            for (sum, x) in vector.iter_mut().zip(&self.vectors[id as usize]) {
                *sum += x / ids.len() as f32;
            }
        }
        Ok(WordVector {
            word: word.to_string(),
            tokens,
            vector,
        })
    }

    /// The vector of token `id` alone, named by its text.
    pub fn token(&self, tokenizer: &Tokenizer, id: u32) -> Result<WordVector> {
        let vector = self
            .vectors
            .get(id as usize)
            .ok_or_else(|| Error::Invalid(format!("token id {id} is past the embedding")))?
            .clone();
        let piece = token_piece(tokenizer, id)?;
        Ok(WordVector {
            word: piece.display(),
            tokens: vec![piece],
            vector,
        })
    }

    /// The `top` tokens nearest `vector` by cosine similarity, leaving out
    /// `exclude` and special tokens.
    pub fn nearest(
        &self,
        tokenizer: &Tokenizer,
        vector: &[f32],
        top: usize,
        exclude: &[u32],
    ) -> Result<Vec<Neighbour>> {
        let special = tokenizer.inner().get_added_tokens_decoder();
        let length = norm(vector).max(f32::MIN_POSITIVE);
        let mut scored: Vec<(u32, f64)> = self
            .vectors
            .iter()
            .zip(&self.norms)
            .enumerate()
            .map(|(id, (v, n))| (id as u32, v, n))
            .filter(|(id, _, _)| !exclude.contains(id) && !special.contains_key(id))
            .map(|(id, v, n)| {
                let dot: f32 = v.iter().zip(vector).map(|(a, b)| a * b).sum();
                (id, (dot / (n.max(f32::MIN_POSITIVE) * length)) as f64)
            })
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        scored
            .into_iter()
            .take(top)
            .map(|(id, similarity)| {
                Ok(Neighbour {
                    token: token_piece(tokenizer, id)?.text(),
                    id,
                    similarity,
                })
            })
            .collect()
    }

    /// The words of `terms` and the sum of their unit vectors with the terms'
    /// signs (as word2vec's analogies are computed).
    pub fn combine(
        &self,
        tokenizer: &Tokenizer,
        terms: &[Term],
    ) -> Result<(Vec<WordVector>, Vec<f32>)> {
        let words = terms
            .iter()
            .map(|t| self.word(tokenizer, &t.word))
            .collect::<Result<Vec<_>>>()?;
        let mut sum = vec![0.0; self.dim()];
        for (term, word) in terms.iter().zip(&words) {
            let scale = term.sign / norm(&word.vector).max(f32::MIN_POSITIVE);
            for (s, x) in sum.iter_mut().zip(&word.vector) {
                *s += scale * x;
            }
        }
        Ok((words, sum))
    }

    /// Width of the vectors.
    pub fn dim(&self) -> usize {
        self.vectors.first().map_or(0, Vec::len)
    }
}

/// Parses an analogy such as `king - man + woman` into signed words; the
/// operators stand apart from the words.
pub fn parse_analogy(expression: &str) -> Result<Vec<Term>> {
    let bad = || {
        Error::Invalid(format!(
            "--analogy '{expression}': write words joined by + and -, e.g. \"king - man + woman\""
        ))
    };
    let mut terms = Vec::new();
    let mut sign = None;
    for piece in expression.split_whitespace() {
        match (piece, sign) {
            ("+", None) if !terms.is_empty() => sign = Some(1.0),
            ("-", None) if !terms.is_empty() => sign = Some(-1.0),
            ("+" | "-", _) => return Err(bad()),
            (word, Some(s)) => {
                terms.push(Term {
                    sign: s,
                    word: word.to_string(),
                });
                sign = None;
            }
            (word, None) if terms.is_empty() => terms.push(Term {
                sign: 1.0,
                word: word.to_string(),
            }),
            _ => return Err(bad()),
        }
    }
    if terms.len() < 2 || sign.is_some() {
        return Err(bad());
    }
    Ok(terms)
}

/// The first two principal components of `vectors`: each vector's
/// coordinates along them (centred). Computed by power iteration on the
/// Gram matrix, which is as small as the number of vectors.
pub fn pca_2d(vectors: &[Vec<f32>]) -> Vec<[f64; 2]> {
    let n = vectors.len();
    let dim = vectors.first().map_or(0, Vec::len);
    let mean: Vec<f64> = (0..dim)
        .map(|j| vectors.iter().map(|v| v[j] as f64).sum::<f64>() / n.max(1) as f64)
        .collect();
    let centred: Vec<Vec<f64>> = vectors
        .iter()
        .map(|v| v.iter().zip(&mean).map(|(&x, m)| x as f64 - m).collect())
        .collect();
    let mut gram: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            (0..n)
                .map(|j| centred[i].iter().zip(&centred[j]).map(|(a, b)| a * b).sum())
                .collect()
        })
        .collect();
    let mut component = || {
        let (value, vector) = top_eigen(&gram);
        // Deflate, so the next power iteration finds the next component.
        for (row, vi) in gram.iter_mut().zip(&vector) {
            for (g, vj) in row.iter_mut().zip(&vector) {
                *g -= value * vi * vj;
            }
        }
        let scale = value.max(0.0).sqrt();
        vector.into_iter().map(|v| scale * v).collect::<Vec<f64>>()
    };
    let (first, second) = (component(), component());
    first.into_iter().zip(second).map(|(a, b)| [a, b]).collect()
}

/// The largest eigenvalue of a symmetric positive semi-definite matrix and
/// its unit eigenvector (sign chosen so its largest entry is positive).
fn top_eigen(matrix: &[Vec<f64>]) -> (f64, Vec<f64>) {
    let n = matrix.len();
    let mut v: Vec<f64> = (0..n).map(|i| 1.0 + i as f64 / n as f64).collect();
    let mut value = 0.0;
    for _ in 0..500 {
        let next: Vec<f64> = matrix
            .iter()
            .map(|row| row.iter().zip(&v).map(|(a, b)| a * b).sum())
            .collect();
        let length = next.iter().map(|x| x * x).sum::<f64>().sqrt();
        if length < 1e-300 {
            return (0.0, vec![0.0; n]);
        }
        value = length;
        v = next.into_iter().map(|x| x / length).collect();
    }
    let largest = v
        .iter()
        .copied()
        .fold(0.0, |m: f64, x| if x.abs() > m.abs() { x } else { m });
    if largest < 0.0 {
        v.iter_mut().for_each(|x| *x = -*x);
    }
    (value, v)
}

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analogies_parse_and_bad_ones_are_refused() {
        let terms = parse_analogy("king - man + woman").unwrap();
        let signs: Vec<(f32, &str)> = terms.iter().map(|t| (t.sign, t.word.as_str())).collect();
        assert_eq!(signs, [(1.0, "king"), (-1.0, "man"), (1.0, "woman")]);
        for bad in [
            "king",
            "- king + queen",
            "king - ",
            "king man",
            "king + - man",
            "",
        ] {
            assert!(parse_analogy(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn pca_finds_the_directions_of_largest_spread() {
        // Points spread 10 along x, 2 along y and 0.1 along z.
        let points: Vec<Vec<f32>> = [(-1.0, 0.0), (1.0, 0.0), (0.0, -1.0), (0.0, 1.0)]
            .iter()
            .map(|&(a, b)| vec![10.0 * a, 2.0 * b, 0.1 * a * b])
            .collect();
        let coords = pca_2d(&points);
        let want = [[-10.0, 0.0], [10.0, 0.0], [0.0, -2.0], [0.0, 2.0]];
        for (got, want) in coords.iter().zip(want) {
            for k in 0..2 {
                assert!(
                    (got[k].abs() - f64::abs(want[k])).abs() < 1e-6,
                    "{coords:?}"
                );
            }
        }
    }
}
