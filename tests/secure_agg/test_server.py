import os

import numpy as np
import pytest

from secure_agg import messages
from secure_agg.client import Client
from secure_agg.errors import SecAggAbort
from secure_agg.graph import neighbour_sets
from secure_agg.messages import Secret
from secure_agg.modular import modular_sum_np
from secure_agg.packing import pack
from secure_agg.server import Server

BITS, DIM = 10, 40


def _parties(clients=5, k=None, threshold=3, min_survivors=1, seed=0):
    graph = neighbour_sets(clients, k, np.random.default_rng(seed))
    session = os.urandom(16)
    server = Server(
        session=session,
        graph=graph,
        threshold=threshold,
        bits=BITS,
        dimension=DIM,
        min_survivors=min_survivors,
    )
    parties = [
        Client(
            i, session=session, neighbours=graph[i], threshold=threshold, bits=BITS, dimension=DIM
        )
        for i in range(clients)
    ]
    return server, parties, graph


def _run_to_upload(server, parties, inputs, upload=None):
    for p in parties:
        server.receive_public_keys(p.index, p.advertise_keys())
    directories = server.key_directories()
    for p in parties:
        server.receive_sealed_shares(p.index, p.share_keys(directories[p.index]))
    forwarded = server.forwarded_shares()
    for p in parties:
        if upload is None or p.index in upload:
            server.receive_masked_input(
                p.index, p.masked_input(forwarded[p.index], inputs[p.index])
            )


def test_server_driven_by_hand_unmasks_exactly_the_sum():
    server, parties, _ = _parties()
    inputs = np.random.default_rng(1).integers(0, 2**BITS, (5, DIM))
    _run_to_upload(server, parties, inputs, upload={0, 1, 2, 4})
    requests = server.unmasking_requests()
    assert sorted(requests) == [0, 1, 2, 4]
    assert messages.decode_ids(requests[0]) == [1, 2, 4]
    for i in (0, 1, 2, 4):
        server.receive_revealed_shares(i, parties[i].unmasking_shares(requests[i]))
    np.testing.assert_array_equal(
        server.result().astype(np.int64), modular_sum_np(inputs[[0, 1, 2, 4]], BITS)
    )


def test_messages_out_of_turn_or_twice_abort():
    server, parties, _ = _parties()
    keys = parties[0].advertise_keys()
    server.receive_public_keys(0, keys)
    with pytest.raises(SecAggAbort, match="client 0 sent public keys twice"):
        server.receive_public_keys(0, keys)
    with pytest.raises(SecAggAbort, match="unknown client 9"):
        server.receive_public_keys(9, keys)
    with pytest.raises(SecAggAbort, match="client 1 sent shares without advertising"):
        server.receive_sealed_shares(1, b"")
    with pytest.raises(SecAggAbort, match="client 0 uploaded without sharing"):
        server.receive_masked_input(0, pack(np.zeros(DIM, np.int64), BITS))


def test_shares_must_go_to_exactly_the_advertised_neighbours():
    server, parties, _ = _parties()
    for p in parties:
        server.receive_public_keys(p.index, p.advertise_keys())
    directories = server.key_directories()
    sealed = messages.decode_sealed(parties[0].share_keys(directories[0]))
    del sealed[3]
    with pytest.raises(SecAggAbort, match=r"sealed shares for \[1, 2, 4\], expected"):
        server.receive_sealed_shares(0, messages.encode_sealed(sealed))


def test_unrequested_or_duplicate_revealed_shares_abort():
    server, parties, _ = _parties()
    inputs = np.zeros((5, DIM), np.int64)
    _run_to_upload(server, parties, inputs, upload={0, 1, 2, 3})
    server.unmasking_requests()
    share = 12345
    # Client 4 did not upload: a self-mask share of it is not something the server asked for.
    wrong_kind = messages.encode_revealed([(4, Secret.SELF_MASK_SEED, share)])
    with pytest.raises(SecAggAbort, match="unrequested share of 4"):
        server.receive_revealed_shares(0, wrong_kind)
    with pytest.raises(SecAggAbort, match="client 4 answered the unmasking step without uploading"):
        server.receive_revealed_shares(4, b"")
    twice = messages.encode_revealed([(1, Secret.SELF_MASK_SEED, share)] * 2)
    with pytest.raises(SecAggAbort, match="two shares of client 1"):
        server.receive_revealed_shares(2, twice)


def test_wrong_shares_are_caught_when_rebuilding():
    server, parties, _ = _parties(threshold=3)
    _run_to_upload(server, parties, np.zeros((5, DIM), np.int64), upload={0, 1, 2, 3})
    requests = server.unmasking_requests()
    for i in (0, 1, 2, 3):
        revealed = messages.decode_revealed(parties[i].unmasking_shares(requests[i]))
        forged = [(about, kind, (v + 1) % 2**521) for about, kind, v in revealed]
        server.receive_revealed_shares(i, messages.encode_revealed(forged))
    with pytest.raises(SecAggAbort, match="client 4"):
        server.result()  # client 4's mask key is checked against its public key first
