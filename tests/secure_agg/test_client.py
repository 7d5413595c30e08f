import os

import numpy as np
import pytest

from secure_agg import messages
from secure_agg.client import Client
from secure_agg.errors import SecAggAbort
from secure_agg.graph import neighbour_sets
from secure_agg.packing import packed_size
from secure_agg.server import Server

BITS, DIM = 12, 50


def _start(clients=4, k=None, threshold=2, seed=0):
    """Clients and a server through AdvertiseKeys; returns (clients, server, directories)."""
    graph = neighbour_sets(clients, k, np.random.default_rng(seed))
    session = os.urandom(16)
    parties = [
        Client(
            i, session=session, neighbours=graph[i], threshold=threshold, bits=BITS, dimension=DIM
        )
        for i in range(clients)
    ]
    server = Server(
        session=session, graph=graph, threshold=threshold, bits=BITS, dimension=DIM, min_survivors=1
    )
    for party in parties:
        server.receive_public_keys(party.index, party.advertise_keys())
    return parties, server, server.key_directories()


def _through_share_keys(**kwargs):
    parties, server, directories = _start(**kwargs)
    for party in parties:
        server.receive_sealed_shares(party.index, party.share_keys(directories[party.index]))
    return parties, server, server.forwarded_shares()


def test_upload_is_packed_masked_and_fresh_each_run():
    parties, _, forwarded = _through_share_keys()
    x = np.arange(DIM) % 7
    upload = parties[0].masked_input(forwarded[0], x)
    assert len(upload) == packed_size(DIM, BITS)
    other = _through_share_keys()
    assert upload != other[0][0].masked_input(other[2][0], x)
    assert parties[1].masked_input(forwarded[1], x) != upload


def test_refuses_to_reveal_both_secrets_of_a_neighbour():
    parties, _, forwarded = _through_share_keys()
    parties[0].masked_input(forwarded[0], np.zeros(DIM, np.int64))
    first = messages.decode_revealed(parties[0].unmasking_shares(messages.encode_ids([1, 2, 3])))
    assert [(about, kind) for about, kind, _ in first] == [
        (j, messages.Secret.SELF_MASK_SEED) for j in (1, 2, 3)
    ]
    with pytest.raises(SecAggAbort, match="both secrets of client 3"):
        parties[0].unmasking_shares(messages.encode_ids([1, 2]))


def test_reveals_the_mask_key_share_of_a_neighbour_that_did_not_upload():
    parties, _, forwarded = _through_share_keys()
    parties[0].masked_input(forwarded[0], np.zeros(DIM, np.int64))
    revealed = messages.decode_revealed(parties[0].unmasking_shares(messages.encode_ids([1, 3])))
    kinds = {about: kind for about, kind, _ in revealed}
    assert kinds == {
        1: messages.Secret.SELF_MASK_SEED,
        2: messages.Secret.MASK_KEY,
        3: messages.Secret.SELF_MASK_SEED,
    }


def test_shares_relabelled_to_another_sender_do_not_open():
    parties, _, forwarded = _through_share_keys()
    sealed = messages.decode_sealed(forwarded[0])
    sealed[1], sealed[2] = sealed[2], sealed[1]  # a server passing off 2's shares as 1's
    parties[0].masked_input(messages.encode_sealed(sealed), np.zeros(DIM, np.int64))
    with pytest.raises(SecAggAbort, match="shares from client 1: authentication failed"):
        parties[0].unmasking_shares(messages.encode_ids([1, 2, 3]))


def test_rejects_keys_of_non_neighbours_and_repeated_keys():
    parties, _, directories = _start(clients=8, k=2, threshold=2)
    client = parties[0]
    keys = messages.decode_key_directory(directories[0])
    stranger = next(j for j in range(1, 8) if j not in keys)
    with pytest.raises(SecAggAbort, match=f"non-neighbours \\[{stranger}\\]"):
        client.share_keys(messages.encode_key_directory({**keys, stranger: (os.urandom(32),) * 2}))
    first, second = sorted(keys)
    with pytest.raises(SecAggAbort, match="not all distinct"):
        client.share_keys(messages.encode_key_directory({first: keys[first], second: keys[first]}))


def test_too_few_neighbours_for_the_threshold_aborts():
    parties, _, directories = _start(clients=5, threshold=3)
    keys = messages.decode_key_directory(directories[0])
    with pytest.raises(SecAggAbort, match="only 2 of its 4 neighbours advertised keys; threshold"):
        parties[0].share_keys(messages.encode_key_directory({1: keys[1], 2: keys[2]}))

    parties, _, forwarded = _through_share_keys(clients=5, threshold=3)
    sealed = messages.decode_sealed(forwarded[0])
    thin = messages.encode_sealed({1: sealed[1], 2: sealed[2]})
    with pytest.raises(SecAggAbort, match="only 2 of its 4 neighbours sent shares; threshold is 3"):
        parties[0].masked_input(thin, np.zeros(DIM, np.int64))


def test_only_neighbours_that_shared_can_be_reported_as_uploaded():
    parties, _, forwarded = _through_share_keys(clients=5, threshold=3)
    sealed = messages.decode_sealed(forwarded[0])
    del sealed[4]
    parties[0].masked_input(messages.encode_sealed(sealed), np.zeros(DIM, np.int64))
    with pytest.raises(SecAggAbort, match=r"told that \[4\] uploaded"):
        parties[0].unmasking_shares(messages.encode_ids([1, 4]))


def test_step_order_and_input_validation():
    parties, _, directories = _start()
    with pytest.raises(SecAggAbort, match="before sharing keys"):
        parties[0].masked_input(b"", np.zeros(DIM, np.int64))
    parties[0].share_keys(directories[0])
    with pytest.raises(SecAggAbort, match="share its keys twice"):
        parties[0].share_keys(directories[0])
    parties, _, forwarded = _through_share_keys()
    for bad, match in [
        (np.zeros(DIM + 1, np.int64), "shape"),
        (np.zeros(DIM), "integers"),
        (np.full(DIM, 2**BITS), "lie in"),
        (np.full(DIM, -1), "lie in"),
    ]:
        with pytest.raises(ValueError, match=match):
            parties[0].masked_input(forwarded[0], bad)
    with pytest.raises(ValueError, match="own neighbour"):
        Client(1, session=b"", neighbours=frozenset({1}), threshold=1, bits=8, dimension=1)
