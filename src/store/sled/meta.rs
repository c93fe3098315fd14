//! Named values on sled: the `meta` tree (name -> bytes).

use super::SledStore;
use crate::store::{ready, Meta, StoreFuture};

impl Meta for SledStore {
    fn meta<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
        ready((|| Ok(self.meta.get(name)?.map(|v| v.to_vec())))())
    }

    fn set_meta<'a>(&'a self, name: &'a str, value: &'a [u8]) -> StoreFuture<'a, ()> {
        ready((|| {
            self.writable()?;
            self.meta.insert(name, value)?;
            Ok(())
        })())
    }

    fn remove_meta<'a>(&'a self, name: &'a str) -> StoreFuture<'a, ()> {
        ready((|| {
            self.writable()?;
            self.meta.remove(name)?;
            Ok(())
        })())
    }
}
