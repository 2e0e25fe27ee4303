// Throws, so the Node sailor publishes its error payload.
exports.process = async function process(msg) {
    throw new Error('node step failed: ' + JSON.stringify(msg.body));
};
