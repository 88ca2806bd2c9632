import ProbeAutodiff

extension Graph {
    /// Multi-head attention of a few queries over projected keys and values, in the exact cheaper
    /// order EP uses (HEADS.md): the same function and gradients as
    /// `multiHeadAttention(q, kIn·W_kᵀ + b_k, vIn·W_vᵀ + b_v)`, without projecting every token.
    ///
    /// Head h's score of token n is `q_h · (W_k,h x_n + b_k,h) = (W_k,hᵀ q_h) · x_n + q_h · b_k,h`:
    /// the query is taken back through the key weight instead of the N tokens forward. Its output
    /// `Σ_n a_hn (W_v,h x_n + b_v,h) = W_v,h (Σ_n a_hn x_n) + b_v,h` (the weights sum to 1): the tokens
    /// are pooled first and projected once. For H heads and L queries over N tokens of width D that
    /// is about `2·H·L·N·D + 2·L·D²` multiply-adds against `2·N·D²` (ViT-B, one query, 16 heads: 24×
    /// fewer). The bias term of the scores is constant over the tokens (the softmax ignores it) but
    /// is kept, so that the key bias gets the gradient upstream's order gives it.
    ///
    /// - q: (Bq, L, D) projected queries, Bq = 1 (shared by the batch: a learned query) or B.
    /// - kIn, vIn: (B, N, D), the inputs of the key and value projections; wk, wv: (D, D)
    ///   PyTorch Linear weights (rows are output channels); bk, bv: (D) or nil. With `wv` nil the
    ///   values are vIn itself, which a single head needs (SimPool's v = LN(x)).
    /// - Returns the output (B, L, D) and the attention probabilities (B, H, L, N).
    func queryFirstAttention(q: Variable<B>, keys kIn: Variable<B>, wk: Variable<B>, bk: Variable<B>?,
                             values vIn: Variable<B>, wv: Variable<B>?, bv: Variable<B>?,
                             heads H: Int, scale: Float) throws -> (Variable<B>, B.Value) {
        let sq = shape(q), sk = shape(kIn)
        let (bq, L, D) = (sq[0], sq[1], sq[2]), (batch, N) = (sk[0], sk[1])
        guard D % H == 0, bq == 1 || bq == batch, shape(vIn) == sk, sk[2] == D, wv != nil || H == 1 else {
            throw HeadError("query-first attention: queries \(sq), keys \(sk), values \(shape(vIn)), \(H) heads (identity values need one head)")
        }
        let c = D / H
        // Per head, the queries taken through its rows of W_k: (H, Bq·L, c)·(H, c, D) → (H, Bq·L, D).
        let qh = try reshape(try permute(try reshape(q, [bq, L, H, c]), [2, 0, 1, 3]), [H, bq * L, c])
        let back = try matmul(qh, try reshape(wk, [H, c, D]))
        let queries = try reshape(try permute(try reshape(back, [H, bq, L, D]), [1, 0, 2, 3]), [bq, H * L, D])
        // Scores (B, H·L, N) = scale · (queries · x_n + q_h · b_k,h).
        var scores = bq == 1 ? try matmul(try reshape(queries, [H * L, D]), kIn, transB: true, alpha: scale)
                             : try matmul(queries, kIn, transB: true, alpha: scale)
        if let bk {
            // (Bq, L, H, c) · (H, c) summed over c → (Bq, H·L, 1), the same for every token.
            let qb = try mul(try reshape(q, [bq, L, H, c]), try reshape(bk, [1, 1, H, c]))
            let bias = try reshape(try permute(try sum(qb, axis: 3), [0, 2, 1]), [bq, H * L, 1])
            scores = try add(scores, try self.scale(bias, scale))
        }
        let attn = try softmax(scores)
        let pooled = try matmul(attn, vIn)                                                       // (B, H·L, D)
        let probs = try backend.reshape(attn.value, [batch, H, L, N])
        guard let wv else { return (try reshape(pooled, [batch, L, D]), probs) }
        // Head h's pooled tokens through its rows of W_v: (H, B·L, D)·(H, c, D)ᵀ → (H, B·L, c).
        let ph = try reshape(try permute(try reshape(pooled, [batch, H, L, D]), [1, 0, 2, 3]), [H, batch * L, D])
        let y = try matmul(ph, try reshape(wv, [H, c, D]), transB: true)
        var out = try reshape(try permute(try reshape(y, [H, batch, L, c]), [1, 2, 0, 3]), [batch, L, D])
        if let bv { out = try add(out, bv) }
        return (out, probs)
    }
}
