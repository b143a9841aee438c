"""Heuristic Steiner trees: Mehlhorn and shortest-path constructions, then key-path/vertex local search."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph

from planner.steiner.instance import _TOL, _cheaper, _Clock, _Graph

_MAX_DISTANCE_ENTRIES = (
    40_000_000  # terminals x nodes float64 matrix kept for the shortest-path heuristic
)
_MAX_SPH_ROOTS = 24
_IMPROVED_STARTS = 6
_PERTURBED_RESTARTS = 16
_PERTURBATION = 0.25
_THOROUGH_MAX_EDGES = 6000


@dataclass(frozen=True)
class _Tree:
    edge_ids: np.ndarray
    cost: float


class _LocalSearch:
    """Constructions and improvement moves on one (reduced) graph."""

    def __init__(self, graph: _Graph) -> None:
        self.g = graph

    # ---- building blocks

    def tree_on(self, vertices: np.ndarray) -> _Tree | None:
        """MST of the subgraph induced by a vertex mask, with non-terminal leaves pruned; None if disconnected."""
        g = self.g
        sel = np.flatnonzero(vertices[g.u] & vertices[g.v])
        nodes = np.flatnonzero(vertices)
        local = np.full(g.n, -1)
        local[nodes] = np.arange(nodes.size)
        sub = sp.csr_array(
            (g.weight[sel], (local[g.u[sel]], local[g.v[sel]])), shape=(nodes.size, nodes.size)
        )
        mst = csgraph.minimum_spanning_tree(sub).tocoo()
        if mst.nnz != nodes.size - 1:
            return None
        ids = g.edge_ids(nodes[mst.row], nodes[mst.col])
        return self._tree(self._prune(ids))

    def _tree(self, edge_ids: np.ndarray) -> _Tree:
        return _Tree(np.sort(edge_ids), float(self.g.cost[edge_ids].sum()))

    def _prune(self, edge_ids: np.ndarray) -> np.ndarray:
        g = self.g
        while True:
            degree = np.bincount(np.concatenate([g.u[edge_ids], g.v[edge_ids]]), minlength=g.n)
            useless_leaf = (degree == 1) & ~g.is_terminal
            drop = useless_leaf[g.u[edge_ids]] | useless_leaf[g.v[edge_ids]]
            if not drop.any():
                return edge_ids
            edge_ids = edge_ids[~drop]

    def vertex_mask(self, tree: _Tree) -> np.ndarray:
        mask = np.zeros(self.g.n, dtype=bool)
        mask[self.g.u[tree.edge_ids]] = True
        mask[self.g.v[tree.edge_ids]] = True
        mask[self.g.terminals] = True
        return mask

    def _path_to_source(self, pred: np.ndarray, node: int) -> list[int]:
        path = [node]
        while pred[node] >= 0:
            node = int(pred[node])
            path.append(node)
        return path

    # ---- constructions

    def solve(self, clock: _Clock) -> _Tree:
        """Local search from the best constructions, then from constructions on perturbed costs."""
        starts = self.construct(clock)
        best = self.improve(starts[0], clock)
        # beyond the first start only where it is cheap, or where the caller granted the time
        if clock.limit is None and len(self.g.u) > _THOROUGH_MAX_EDGES:
            return best
        for tree in starts[1:_IMPROVED_STARTS]:
            if clock.expired():
                return best
            best = min(best, self.improve(tree, clock), key=_cost)
        if len(self.g.terminals) * self.g.n <= _MAX_DISTANCE_ENTRIES:
            rng = np.random.default_rng(0)
            for _ in range(_PERTURBED_RESTARTS):
                if clock.expired():
                    break
                best = min(best, self.improve(self.perturbed_start(rng), clock), key=_cost)
        return best

    def construct(self, clock: _Clock) -> list[_Tree]:
        """Distinct trees from Mehlhorn's and the shortest-path heuristic (several roots), cheapest first."""
        g = self.g
        trees = {}
        mehlhorn = self.mehlhorn()
        trees[mehlhorn.edge_ids.tobytes()] = mehlhorn
        t = len(g.terminals)
        if t * g.n <= _MAX_DISTANCE_ENTRIES:
            dist, pred = csgraph.dijkstra(g.matrix, indices=g.terminals, return_predecessors=True)
            for root in np.unique(np.linspace(0, t - 1, min(t, _MAX_SPH_ROOTS)).astype(int)):
                tree = self.tree_on(self.shortest_path_heuristic(int(root), dist, pred))
                if tree is not None:
                    trees[tree.edge_ids.tobytes()] = tree
                if clock.expired():
                    break
        return sorted(trees.values(), key=_cost)

    def perturbed_start(self, rng: np.random.Generator) -> _Tree:
        """Shortest-path heuristic from a random root on randomly inflated costs (for diversity)."""
        g = self.g
        noisy = g.matrix.copy()
        noisy.data = noisy.data * rng.uniform(1.0, 1.0 + _PERTURBATION, noisy.data.size)
        dist, pred = csgraph.dijkstra(noisy, indices=g.terminals, return_predecessors=True)
        tree = self.tree_on(
            self.shortest_path_heuristic(int(rng.integers(len(g.terminals))), dist, pred)
        )
        assert tree is not None, "shortest-path heuristic vertices induce a connected subgraph"
        return tree

    def mehlhorn(self) -> _Tree:
        """Mehlhorn's 2-approximation: MST of the terminal Voronoi-region graph, expanded to paths."""
        g = self.g
        dist, pred, source = csgraph.dijkstra(
            g.matrix, indices=g.terminals, min_only=True, return_predecessors=True
        )
        region = np.full(g.n, -1)
        region[g.terminals] = np.arange(len(g.terminals))
        region = region[source]
        bridges = np.flatnonzero(region[g.u] != region[g.v])
        length = dist[g.u[bridges]] + g.weight[bridges] + dist[g.v[bridges]]
        a, b = region[g.u[bridges]], region[g.v[bridges]]
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        order = np.lexsort((length, hi, lo))
        first = np.ones(order.size, dtype=bool)
        first[1:] = (lo[order][1:] != lo[order][:-1]) | (hi[order][1:] != hi[order][:-1])
        best = order[first]
        t = len(g.terminals)
        terminal_graph = sp.csr_array((length[best] + _TOL, (lo[best], hi[best])), shape=(t, t))
        mst = csgraph.minimum_spanning_tree(terminal_graph).tocoo()
        index = {(int(x), int(y)): int(k) for x, y, k in zip(lo[best], hi[best], best)}
        mask = np.zeros(g.n, dtype=bool)
        mask[g.terminals] = True
        for x, y in zip(mst.row.tolist(), mst.col.tolist()):
            edge = bridges[index[(min(x, y), max(x, y))]]
            for end in (g.u[edge], g.v[edge]):
                mask[self._path_to_source(pred, int(end))] = True
        tree = self.tree_on(mask)
        assert tree is not None, "Mehlhorn paths form a connected vertex set"
        return tree

    def shortest_path_heuristic(self, root: int, dist: np.ndarray, pred: np.ndarray) -> np.ndarray:
        """Takahashi-Matsuyama: grow from one terminal, repeatedly attaching the nearest terminal."""
        g = self.g
        t = len(g.terminals)
        rows = np.arange(t)
        in_tree = np.zeros(g.n, dtype=bool)
        start = int(g.terminals[root])
        in_tree[start] = True
        nearest = dist[:, start].copy()
        attach = np.full(t, start)
        waiting = np.ones(t, dtype=bool)
        waiting[root] = False
        for _ in range(t - 1):
            k = int(np.argmin(np.where(waiting, nearest, np.inf)))
            waiting[k] = False
            walk = self._path_to_source(pred[k], int(attach[k]))
            path = np.array([x for x in walk if not in_tree[x]], dtype=np.int64)
            if path.size == 0:
                continue
            in_tree[path] = True
            sub = dist[:, path]
            j = sub.argmin(axis=1)
            closer = sub[rows, j] < nearest
            nearest[closer] = sub[rows, j][closer]
            attach[closer] = path[j[closer]]
        return in_tree

    # ---- local search

    def improve(self, tree: _Tree, clock: _Clock) -> _Tree:
        """Key-path exchange, key-vertex elimination and Steiner-vertex insertion until no move helps."""
        thorough = clock.limit is not None or len(self.g.u) <= _THOROUGH_MAX_EDGES
        while not clock.expired():
            before = tree.cost
            tree = self.key_path_exchange(tree, clock)
            tree = self.key_vertex_elimination(tree, clock)
            if thorough:
                tree = self.vertex_insertion(tree, clock)
            if not _cheaper(tree.cost, before):
                break
        return tree

    def _try_replace(self, tree: _Tree, pieces: list[np.ndarray], removed_cost: float) -> _Tree:
        """Rejoin tree pieces by shortest paths, or through one new hub vertex; keep the result if cheaper."""
        if len(pieces) == 2:
            small, large = sorted(pieces, key=len)
            dist, pred = self.g.shortest_paths(small, limit=removed_cost)
            target = large[np.argmin(dist[large])]
            path = self._path_to_source(pred, int(target))
            return self._accept_if_cheaper(tree, pieces, [path], float(dist[target]), removed_cost)
        searches = [self.g.shortest_paths(piece, limit=removed_cost) for piece in pieces]
        joins: dict[tuple[int, int], tuple[float, list[int]]] = {}
        for i, (dist, pred) in enumerate(searches[:-1]):
            for j in range(i + 1, len(pieces)):
                target = pieces[j][np.argmin(dist[pieces[j]])]
                if np.isfinite(dist[target]):
                    joins[(i, j)] = (float(dist[target]), self._path_to_source(pred, int(target)))
        chosen = _prim(len(pieces), joins)
        paths = [joins[p][1] for p in chosen] if chosen is not None else []
        cost = sum(joins[p][0] for p in chosen) if chosen is not None else math.inf
        # a star around one hub can beat any tree of pairwise paths (a new Steiner vertex)
        through = np.sum([dist for dist, _ in searches], axis=0)
        hub = int(np.argmin(through))
        if through[hub] < cost:
            cost = float(through[hub])
            paths = [self._path_to_source(pred, hub) for _, pred in searches]
        return self._accept_if_cheaper(tree, pieces, paths, cost, removed_cost)

    def _accept_if_cheaper(
        self,
        tree: _Tree,
        pieces: list[np.ndarray],
        paths: list[list[int]],
        cost: float,
        removed_cost: float,
    ) -> _Tree:
        if not _cheaper(cost, removed_cost):
            return tree
        mask = np.zeros(self.g.n, dtype=bool)
        for piece in pieces:
            mask[piece] = True
        for path in paths:
            mask[path] = True
        candidate = self.tree_on(mask)
        if candidate is not None and _cheaper(candidate.cost, tree.cost):
            return candidate
        return tree

    def key_path_exchange(self, tree: _Tree, clock: _Clock) -> _Tree:
        """Replace a key path by a shorter path between the two pieces it joins."""
        rooted = _RootedTree(self.g, tree)
        tried: set[bytes] = set()
        while not clock.expired():
            fresh = [p for p in rooted.paths if p.signature not in tried]
            if not fresh:
                break
            path = max(fresh, key=lambda p: p.cost)
            tried.add(path.signature)
            pieces = [rooted.subtree(path.bottom), rooted.outside(path.below_top)]
            better = self._try_replace(tree, pieces, path.cost)
            if better is not tree:
                tree, rooted = better, _RootedTree(self.g, better)
        return tree

    def key_vertex_elimination(self, tree: _Tree, clock: _Clock) -> _Tree:
        """Drop a Steiner vertex of degree >= 3 with its key paths and rejoin the pieces."""
        rooted = _RootedTree(self.g, tree)
        tried: set[int] = set()
        while not clock.expired():
            fresh = [x for x in rooted.steiner_hubs() if x not in tried]
            if not fresh:
                break
            hub = fresh[0]
            tried.add(hub)
            up, down = rooted.up_path[hub], rooted.down_paths[hub]
            pieces = [rooted.outside(up.below_top)] + [rooted.subtree(p.bottom) for p in down]
            better = self._try_replace(tree, pieces, up.cost + sum(p.cost for p in down))
            if better is not tree:
                tree, rooted = better, _RootedTree(self.g, better)
        return tree

    def vertex_insertion(self, tree: _Tree, clock: _Clock) -> _Tree:
        """Add a non-tree vertex touching the tree twice if the MST over the larger set is cheaper."""
        g = self.g
        mask = self.vertex_mask(tree)
        touching = g.matrix.astype(bool).astype(np.int32) @ mask.astype(np.int32)
        longest = float(g.cost[tree.edge_ids].max()) if tree.edge_ids.size else 0.0
        for x in np.flatnonzero(~mask & (touching >= 2)).tolist():
            if clock.expired():
                break
            links = g.matrix[[x]].toarray()[0][mask]
            links = np.sort(links[links > 0])
            if links.size < 2 or links[1] >= longest:
                continue  # as a leaf it would be pruned; its second edge could not replace any tree edge
            trial = mask.copy()
            trial[x] = True
            candidate = self.tree_on(trial)
            if candidate is not None and _cheaper(candidate.cost, tree.cost):
                tree, mask = candidate, self.vertex_mask(candidate)
                longest = float(g.cost[tree.edge_ids].max())
        return tree


@dataclass(frozen=True)
class _KeyPath:
    """A tree path between key nodes (terminals or degree >= 3) through non-terminals of degree 2."""

    top: int
    below_top: int
    bottom: int
    cost: float
    signature: bytes


class _RootedTree:
    """A tree rooted at a terminal, numbered in preorder so that every subtree is one contiguous slice.

    Rooting at a terminal makes every key path vertical: its highest node is one of its ends.
    """

    def __init__(self, graph: _Graph, tree: _Tree) -> None:
        self.g = graph
        nodes = np.unique(np.concatenate([graph.u[tree.edge_ids], graph.v[tree.edge_ids]]))
        local = np.full(graph.n, -1)
        local[nodes] = np.arange(nodes.size)
        ends_u, ends_v = local[graph.u[tree.edge_ids]], local[graph.v[tree.edge_ids]]
        adjacency = sp.csr_array(
            (np.ones(ends_u.size), (ends_u, ends_v)), shape=(nodes.size, nodes.size)
        )
        root = int(local[graph.terminals[0]])
        order, parent = csgraph.depth_first_order(adjacency, root, directed=False)
        self.order = nodes[order]
        self.parent = np.full(graph.n, -1)
        has_parent = parent[order] >= 0
        self.parent[nodes[order][has_parent]] = nodes[parent[order][has_parent]]
        self.position = np.full(graph.n, -1)
        self.position[self.order] = np.arange(self.order.size)
        self.size = np.zeros(graph.n, dtype=np.int64)
        self.size[self.order] = 1
        for x in self.order[:0:-1].tolist():
            self.size[self.parent[x]] += self.size[x]
        self.degree = np.bincount(
            np.concatenate([graph.u[tree.edge_ids], graph.v[tree.edge_ids]]), minlength=graph.n
        )
        self._key_paths()

    def _key_paths(self) -> None:
        g = self.g
        is_key = g.is_terminal | (self.degree >= 3)
        self.paths: list[_KeyPath] = []
        self.up_path: dict[int, _KeyPath] = {}
        self.down_paths: dict[int, list[_KeyPath]] = {}
        for bottom in self.order[1:][is_key[self.order[1:]]].tolist():
            steps = [bottom]
            while not is_key[self.parent[steps[-1]]]:
                steps.append(int(self.parent[steps[-1]]))
            top = int(self.parent[steps[-1]])
            walk = np.array(steps)
            edges = g.edge_ids(walk, self.parent[walk])
            path = _KeyPath(
                top, int(walk[-1]), bottom, float(g.cost[edges].sum()), np.sort(edges).tobytes()
            )
            self.paths.append(path)
            self.up_path[bottom] = path
            self.down_paths.setdefault(top, []).append(path)

    def steiner_hubs(self) -> list[int]:
        """Non-terminals of tree degree >= 3, most expensive surroundings first."""
        hubs = [x for x in self.down_paths if not self.g.is_terminal[x]]
        return sorted(
            hubs, key=lambda x: -(self.up_path[x].cost + sum(p.cost for p in self.down_paths[x]))
        )

    def subtree(self, x: int) -> np.ndarray:
        start = self.position[x]
        return self.order[start : start + self.size[x]]

    def outside(self, x: int) -> np.ndarray:
        """Tree nodes not in the subtree of ``x``."""
        start = self.position[x]
        return np.concatenate([self.order[:start], self.order[start + self.size[x] :]])


def _cost(tree: _Tree) -> float:
    return tree.cost


def _prim(
    k: int, joins: dict[tuple[int, int], tuple[float, list[int]]]
) -> list[tuple[int, int]] | None:
    """Minimum spanning tree over ``k`` pieces from the available pairwise joins; None if disconnected."""
    inside = {0}
    chosen = []
    while len(inside) < k:
        options = [
            (cost, pair)
            for pair, (cost, _) in joins.items()
            if (pair[0] in inside) != (pair[1] in inside)
        ]
        if not options:
            return None
        _, pair = min(options)
        chosen.append(pair)
        inside.update(pair)
    return chosen


# --------------------------------------------------------------------------- exact MILP
