// Emits its input body (the worker benchmark's action on the Node side).
exports.process = async function process(msg) {
    return { body: msg.body, headers: {}, attachments: {}, metadata: {} };
};
