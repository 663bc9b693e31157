"""The one place that decides what a version is and whether a change is newer than what is stored.

This docstring is the version rule (attribute mode, ``AttributeScheme``); docs/versioning.md explains
it for operators. Stream-position mode (``StreamScheme``) orders by stream position only.

**State.** Per item and projection: ``life`` (re-creations so far), ``rev`` (the item's version
attribute), ``deleted``, ``position`` (the newest stream position the state includes), ``seen_at``
(when the change behind it was made) and, for a state a scan wrote that no stream record has placed
yet, ``digest`` (a fingerprint of the scanned image). ``M`` = ``LIFE_MARGIN_S`` (5 s) bounds the clock
skew between a backfill host and DynamoDB plus the rounding of ``ApproximateCreationDateTime``.

**Rules** for a change C against the stored state S (nothing stored: C is taken as life 0):

1. Stream order. A stream record at or before ``S.position`` is stale.
2. Tombstones. S deleted: a stream record later than its position starts a new life; a scan starts one
   only when read more than M after the delete. Anything else is stale.
3. Placed live state. An INSERT later in the stream than S starts a new life (a REMOVE lies between,
   lost or skipped by ``keep_expired``); a MODIFY or REMOVE wins when ``(rev, deleted)`` is larger.
4. Scans. A scan is taken only when read more than M after ``S.seen_at``: a higher version is the same
   life moved on; a lower version, or S deleted, is a later life; the same version is stale. Read within
   M of S: stale (the stream brings what came after S). A taken scan keeps ``S.position``, sets
   ``digest`` and is *unplaced*.
5. Unplaced scanned state. Exactly three stream changes move it: (a) its own record (new image = the
   scanned image) places it at that position and changes nothing else; (b) its successor (old image =
   the scanned image) moves it on in the same life; (c) a change made more than M after the read that is
   neither starts a new life. Everything else is stale.
6. ``keep_expired``: a TTL delete changes nothing, except that it places an unplaced scanned state whose
   image it deleted (``confirm``), so a later re-creation counts as a new life.

**Proof sketch.**

* *The order is total and the servers enforce it.* States are ordered by ``(life, rev, deleted,
  placed)``; every rule above that takes a change yields a strictly larger tuple (a new life raises
  ``life``; the same life needs a larger ``(rev, deleted)``; placing only turns ``placed`` from 0 to 1).
  ``external_version`` packs the tuple into 63 bits (life < 2**22, rev < 2**39), OpenSearch refuses any
  write not above the stored version and the aggregate sink conditions every write on the record it
  read, so two writers racing (stream, backfill, repair, retries) can never leave the older state.
* *A scan never outranks newer stream state.* Rule 4 takes a scan only when it was read more than M
  after the change behind S, so the scan saw that change: its image is S or later in the item's true
  history. A later stream change is never refused because of a scan: under rule 5 its successor, and
  anything made clearly after the read, get in.
* *A late or redriven change never replaces a newer state.* Against a placed state rule 1 refuses every
  record at or before its position (positions are the stream's own order for one item) and rule 3 lets
  in only records after it. Against an unplaced scanned state, every change made before the read is
  already in the scanned image, so rule 5 refuses it unless it is the state's own record, which changes
  nothing visible; the first change after the read has the scanned image as its old image, and the
  stream delivers an item's records in order, so that successor arrives before any later change.
* *Lives are told apart* by stream positions where the stream alone is involved (an INSERT after a live
  state or a tombstone must follow a delete), by time with the margin M where a scan is involved (what
  was read more than M after a change saw it), and by the image fingerprint for a scanned state's own
  record and successor.
* *A new life requires* a stream record later in the stream than a tombstone or a placed live state
  (rules 2, 3), or a change or read made more than M after the stored state (rules 2, 4, 5c). An INSERT
  that is merely "not clearly older" than a scanned state is stale (issue 14, case 6: a late INSERT
  redrive used to start a new life and roll a backfilled v2 back to v1).

**Limits.** Writers increment the version on every write (two writes with one version are one). A key
re-created more than 4,194,303 times in one build is refused (a dead letter naming it): ``backfill
--rebuild`` starts every item at life 0 again. A restored table (versions going backwards) makes updates
stale until the versions pass the stored ones: ``projector verify`` names it, a rebuild cures it.
"""

from __future__ import annotations

from projector.versioning.exceptions import VersionError
from projector.versioning.fold import FoldResult, fold, fold_write
from projector.versioning.schemes import AttributeScheme, StreamScheme, VersionScheme, scheme_for
from projector.versioning.state import ItemState

__all__ = [
    "AttributeScheme",
    "FoldResult",
    "ItemState",
    "StreamScheme",
    "VersionError",
    "VersionScheme",
    "fold",
    "fold_write",
    "scheme_for",
]
