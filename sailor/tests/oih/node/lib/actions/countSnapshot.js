// Increments `count` in the snapshot, emits the new snapshot, then the count as data.
exports.process = async function process(msg, cfg, snapshot) {
    const count = ((snapshot && snapshot.count) || 0) + 1;
    await this.emit('snapshot', { count });
    return { data: { count }, metadata: msg.metadata || {}, attachments: {} };
};
