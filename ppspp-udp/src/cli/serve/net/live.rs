//! Live swarms on the network thread: joined from a link, or injected by serve itself.

use super::*;

impl State {
    /// Adds a live swarm over a ring store that keeps `keep` chunks behind the live edge.
    fn add_live_swarm(
        &mut self,
        mut scfg: SwarmConfig,
        keep: u64,
        chunks_per_sig: u64,
    ) -> Result<(SwarmHandle, crate::cli::live::RingStore), AddError> {
        let ring = crate::cli::live::RingStore::new(keep + 2 * chunks_per_sig);
        scfg.live_discard_window(Some(keep));
        let now = self.driver.now();
        let handle = self
            .driver
            .endpoint_mut()
            .add_swarm(now, scfg, Box::new(ring.clone()))
            .map_err(|e| AddError::Refused(e.to_string()))?;
        Ok((handle, ring))
    }

    pub(super) fn add_live(
        &mut self,
        p: crate::cli::serve::live::PreparedLive,
    ) -> Result<Arc<Content>, AddError> {
        let id = crate::cli::serve::live::key_of(&p.link.swarm_id);
        if let Some(e) = self.swarms.get(&id) {
            return Ok(e.content.clone());
        }
        let verifier = ppspp_core::live::verifier(&p.link.swarm_id)
            .map_err(|e| AddError::Refused(e.to_string()))?;
        let params = p.link.params();
        let chunks_per_sig = params.nchunks_per_sig;
        let origin_urls = parse_origins(&p.link.origins)?;
        let scfg = SwarmConfig::live(p.link.swarm_id.clone(), params, verifier);
        let (handle, ring) = self.add_live_swarm(scfg, p.keep, chunks_per_sig)?;
        let local = self.driver.local_addr();
        for peer in crate::cli::reachable(&p.link.peers, local) {
            let now = self.driver.now();
            let _ = self.driver.endpoint_mut().connect(now, handle, peer);
        }
        if let Some(o) = self.start_origins(id, handle, &origin_urls)? {
            self.live_origins.insert(id, o);
        }
        let mut shown = p.link.clone();
        shown.peers.clear();
        let book = BookEntry::Live {
            link: p.link.to_string(),
            name: p.name.clone(),
        };
        let content = Arc::new(Content {
            id,
            name: p.name,
            chunk_size: p.link.chunk_size,
            link: SwarmLink::new(id).map_err(|e| AddError::Refused(e.to_string()))?,
            source: Source::Live(crate::cli::serve::live::LiveContent::new(
                shown, ring, p.keep,
            )),
        });
        self.insert(
            handle,
            content.clone(),
            Kind::Live(Box::new(p.link)),
            Some(book),
            Finder::new(Trackers::default()),
        );
        Ok(content)
    }

    pub(super) fn add_live_source(
        &mut self,
        p: crate::cli::serve::live::PreparedSource,
    ) -> Result<Arc<Content>, AddError> {
        let live_id = p.key.swarm_id();
        let id = crate::cli::serve::live::key_of(&live_id);
        if self.swarms.contains_key(&id) {
            return Err(AddError::Refused("this stream is served already".into()));
        }
        let mut link = crate::live_link::LiveLink::new(live_id);
        link.chunk_size = p.params.chunk_size;
        link.chunks_per_sig = p.params.nchunks_per_sig;
        link.form = p.params.form;
        let chunks_per_sig = p.params.nchunks_per_sig;
        let scfg = SwarmConfig::live_source(p.params, Arc::new(p.key));
        let (handle, ring) = self.add_live_swarm(scfg, p.keep, chunks_per_sig)?;
        let content = Arc::new(Content {
            id,
            name: p.name,
            chunk_size: link.chunk_size,
            link: SwarmLink::new(id).map_err(|e| AddError::Refused(e.to_string()))?,
            source: Source::Live(crate::cli::serve::live::LiveContent::new(
                link.clone(),
                ring,
                p.keep,
            )),
        });
        // Not in the book: its input cannot be brought back on restart.
        self.insert(
            handle,
            content.clone(),
            Kind::Live(Box::new(link)),
            None,
            Finder::new(Trackers::default()),
        );
        Ok(content)
    }

    pub(super) fn push_live(
        &mut self,
        id: HashValue,
        chunk: Option<Vec<u8>>,
    ) -> Result<(), String> {
        let handle = self.swarms.get(&id).ok_or("the stream was removed")?.handle;
        let now = self.driver.now();
        let ep = self.driver.endpoint_mut();
        match chunk {
            Some(c) => ep.push_live_chunk(now, handle, &c).map(|_| ()),
            None => ep.finish_live(now, handle).map(|_| ()),
        }
        .map_err(|e| e.to_string())?;
        // Gateway responses of the source's own stream wait for its chunks.
        self.wake(id);
        Ok(())
    }
}
