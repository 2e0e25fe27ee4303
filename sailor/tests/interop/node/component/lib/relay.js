// Appends this step's name to body.path and records what the Node sailor handed to process().
exports.process = async function process(msg, cfg) {
    const body = Object.assign({}, msg.body);
    body.path = (body.path || []).concat([cfg.name || 'node']);
    body[(cfg.name || 'node') + '_saw'] = { id: msg.id, headers: msg.headers, metadata: msg.metadata };
    return { body, headers: {}, attachments: {}, metadata: msg.metadata || {} };
};
