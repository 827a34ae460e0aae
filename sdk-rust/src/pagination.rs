//! Lists as streams: each page's `next_cursor` becomes the next request's
//! `cursor`, until a page has none.

use std::collections::VecDeque;
use std::future::Future;

use futures_core::Stream;

use crate::Result;

/// Every item of every page. `fetch` gets one page's items and the cursor of
/// the next; `set_cursor` puts a cursor into the query. An error ends the
/// stream after it is yielded.
pub fn paginate<'a, Q, T, F, Fut>(
    query: Q,
    fetch: F,
    set_cursor: fn(&mut Q, String),
) -> impl Stream<Item = Result<T>> + 'a
where
    Q: Clone + 'a,
    T: 'a,
    F: Fn(Q) -> Fut + 'a,
    Fut: Future<Output = Result<(Vec<T>, Option<String>)>> + 'a,
{
    struct State<Q, T> {
        query: Option<Q>,
        buffer: VecDeque<T>,
    }
    let state = State {
        query: Some(query),
        buffer: VecDeque::new(),
    };
    futures::stream::unfold((state, fetch), move |(mut st, fetch)| async move {
        loop {
            if let Some(item) = st.buffer.pop_front() {
                return Some((Ok(item), (st, fetch)));
            }
            let q = st.query.take()?;
            match fetch(q.clone()).await {
                Ok((items, next)) => {
                    st.buffer.extend(items);
                    if let Some(cursor) = next {
                        let mut q = q;
                        set_cursor(&mut q, cursor);
                        st.query = Some(q);
                    }
                }
                Err(e) => return Some((Err(e), (st, fetch))),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[tokio::test]
    async fn pages_are_followed_until_there_is_no_cursor() {
        #[derive(Clone, Default)]
        struct Q {
            cursor: Option<String>,
        }
        let pages = |q: Q| async move {
            Ok(match q.cursor.as_deref() {
                None => (vec![1, 2], Some("a".to_string())),
                Some("a") => (vec![], Some("b".to_string())),
                Some("b") => (vec![3], None),
                Some(_) => unreachable!(),
            })
        };
        let all: Vec<i32> = paginate(Q::default(), pages, |q, c| q.cursor = Some(c))
            .map(|r| r.unwrap())
            .collect()
            .await;
        assert_eq!(all, vec![1, 2, 3]);

        let failing = |_q: Q| async move {
            Err::<(Vec<i32>, Option<String>), _>(crate::Error::Invalid("boom".into()))
        };
        let got: Vec<_> = paginate(Q::default(), failing, |q, c| q.cursor = Some(c))
            .collect()
            .await;
        assert_eq!(
            got.len(),
            1,
            "the error is yielded once, then the stream ends"
        );
    }
}
